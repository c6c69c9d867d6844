"""Generated code of ``protos/arko/v1`` (package ``arko.v1``); ``make proto`` rewrites it."""
