"""Methods shipped with Palabre, each a pluggy plugin (see ``palabre.plugin_host``)."""
