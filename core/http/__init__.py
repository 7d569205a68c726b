"""HTTP machinery shared by the apps."""
