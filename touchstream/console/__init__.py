"""The staff console (its pages come next); ``docs`` serves the API docs offline."""
