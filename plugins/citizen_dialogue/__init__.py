"""The citizen dialogue method: to be filled in; it registers no hook yet."""
