"""The call-centre figures read model."""
