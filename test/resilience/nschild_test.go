package resilience

const nsChildArg = "-resilience.nschild"

func nsChild() int { return 2 }
