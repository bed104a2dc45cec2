"""One module per agent, in the order a work item meets them."""
