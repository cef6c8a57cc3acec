package backend

// For the external tests.
var (
	XLALinked = xlaLinked
	Create    = create
)
