"""What a run leaves behind: the run folder, its typed summary, readers."""
