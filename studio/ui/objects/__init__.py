"""The objects list: the shapes of the shown image, with hide, lock and selection."""
