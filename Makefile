# The two commands of README.md. Both install what is missing first.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
LISTEN ?= 127.0.0.1:8700

.PHONY: deps build run test asan clean format

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@echo "conveyor: starting on http://$(LISTEN), data in ./conveyor-data (Ctrl-C to stop)"
	@echo "try:  curl -d '{\"task\":{\"hello\":\"world\"}}' http://$(LISTEN)/add_task"
	@$(BUILD_DIR)/conveyor serve --listen $(LISTEN)

# The Release build runs unit and integration tests; a clang ASan+UBSan build runs them all
# again against the sanitized server binary, plus the libFuzzer smoke targets (tests/fuzz).
test: build
	@cmake -S . -B $(BUILD_DIR)-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" -DCONVEYOR_SANITIZE=ON -DCONVEYOR_FUZZ=ON \
	  -DCONVEYOR_UNIT_ONLY=OFF >/dev/null
	@cmake --build $(BUILD_DIR)-sanitize -j $(JOBS)
	@cd $(BUILD_DIR) && ctest --output-on-failure -j 2
	@cd $(BUILD_DIR)-sanitize && ctest --output-on-failure -j 2

clean:
	rm -rf $(BUILD_DIR) $(BUILD_DIR)-sanitize

format:
	@clang-format -i $$(git ls-files '*.cpp' '*.h')
