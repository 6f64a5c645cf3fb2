module weedpy/bench/go_relay

go 1.22
