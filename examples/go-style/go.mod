module example.com/hello

go 1.22

require (
	example.com/greeting v1.4.0
	example.com/templates v0.9.2
)
