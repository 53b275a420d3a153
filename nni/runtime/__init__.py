"""What runs inside a trial process: its environment and its channel to the manager."""
