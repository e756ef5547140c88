"""What runs on a device: standalone scripts that import nothing from edgefit and nothing heavy (numpy, Pillow
and the one runtime they name). edgefit copies them into bundles and probe folders verbatim, and imports the
definitions they hold (preprocessing, the timing protocol) so that host and device compute the same thing."""
