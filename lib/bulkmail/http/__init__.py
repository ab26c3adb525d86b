"""The HTTP edge: the request helpers every route shares, and one Router module per resource."""
