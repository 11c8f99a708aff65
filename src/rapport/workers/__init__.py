"""Workers: the outbox relay and the jobs it runs. Thin: they call actions and adapters."""
