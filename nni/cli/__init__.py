"""nnictl, the command line."""
