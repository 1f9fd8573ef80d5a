"""ckls.skills: Agent Skills tooling — lint and scaffold skill folders, and measure what a skill is worth by
running the kernel agent on a task set with and without it, the verdicts coming from ckls.verify."""
