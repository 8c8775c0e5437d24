"""gantune's command line, and (to come) diagnosis, remedy policy, sweeps and tracking."""
