"""The load side of the instrument: the generator, the open-loop driver, the collector and the history's layout."""
