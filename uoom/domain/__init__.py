"""Pure domain, no I/O: the order (`orders.Order`, its states, money), the reasons a use case
refuses (`errors`), channels and weights (`channels`), event names and the envelope (`events`)."""
