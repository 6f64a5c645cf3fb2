module weedpy/bench/http_loadgen

go 1.22
