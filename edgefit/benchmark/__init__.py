"""`edgefit bench`: measured latency of models on this host, budget verdicts, CI reports."""
