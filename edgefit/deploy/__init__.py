"""Deploy bundles: from a verified export to what a user pastes into their project.

    from edgefit.deploy.write import write_bundles
    bundles = write_bundles("artifacts", "linux,web")   # -> artifacts/linux/, artifacts/web/

targets.py is the one table of targets (light: the CLI reads it for its help); write.py writes bundles through
one writer module per target (tflite_micro, linux, web, android, coreml, executorch).
"""
