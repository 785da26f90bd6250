"""What every layer uses: errors a user can act on, paths, the console, processes."""
