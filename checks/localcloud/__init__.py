"""The embedded cloud (`popek cloud up`): services, configs, images, dataplane."""
