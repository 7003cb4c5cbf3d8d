"""The sample-city generator: a synthetic city like Shenzhen (registries, plans), written as its
departments would submit it, and sample inspection results for a published plan."""
