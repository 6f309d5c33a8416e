# kmsdns — thin front door; the recipes live in build/.
.PHONY: build run test bench fuzz soak dist dist-test clean

build:
	@build/build.sh

run:
	@build/run.sh

test:
	@build/test.sh

bench:
	@build/bench/bench.sh

fuzz:
	@build/fuzz.sh

soak:
	@build/soak.sh

dist:
	@build/dist.sh

dist-test:
	@build/dist-test.sh

clean:
	rm -rf bin dist
