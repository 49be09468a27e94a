"""Methods shipped with Palabre, each a pluggy plugin (see ``core.plugins``)."""
