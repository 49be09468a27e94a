"""The mystery shopping method: to be filled in; it registers no hook yet."""
