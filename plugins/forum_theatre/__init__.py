"""The forum theatre method: to be filled in; it registers no hook yet."""
