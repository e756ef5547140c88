"""Image-folder data: scanning, splitting, loading, augmentation and the procedural demo set."""
