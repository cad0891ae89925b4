"""Scale-out: metrics, structured logs, and the chaos suite against a multi-process hub."""
