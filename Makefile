# Two commands matter: `make demo` and `make test`. Each bootstraps its own venv from nothing:
# .venv-demo holds only what the demo runs on (the torch-free runtime and the simulator's extras),
# .venv everything (tests, training, export).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_VENV := .venv-demo
# The dev/CI machine keeps a CPU torch wheel in /opt/wheels; uv does not look there unless told.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
UV := $(BIN)/uv
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: venv test test-slow test-wheel lint demo demo-data demo-train demo-eval dual-eval corrections-experiment heads-bench bench clean

%/bin/uv:
	$(PYTHON) -m venv $*
	$*/bin/python -m pip install -q --upgrade pip uv

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/uv
	$(UV) pip install -p $(BIN)/python $(FIND_LINKS) -c constraints.txt -e '.[all,dev]'
	touch $@

venv: $(VENV)/.installed

test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: venv
	$(BIN)/python -m pytest -m slow -q

# The wheel as a robot installs it: Python 3.10, [runtime] + [sim] only, run from outside the checkout.
test-wheel: venv
	scripts/check_wheel_install.sh

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

$(DEMO_VENV)/.installed: pyproject.toml setup.py constraints.txt | $(DEMO_VENV)/bin/uv
	$(DEMO_VENV)/bin/uv pip install -p $(DEMO_VENV)/bin/python -c constraints.txt -e '.[runtime,sim]'
	touch $@

demo: $(DEMO_VENV)/.installed
	$(DEMO_VENV)/bin/edgevla demo

clean:
	rm -rf $(VENV) $(DEMO_VENV) .pytest_cache .ruff_cache

# Every figure of benchmarks/plan.yaml side by side: benchmarks/results/report.md + .json + PNGs.
bench: venv
	$(BIN)/edgevla bench all --out benchmarks/results

# The demo policy's data: scripted-expert demonstrations on the simulated SO-101, four
# LeRobotDatasets of 250 episodes from rest (seeds 0.., 1000.., 2000.., 3000..), then four of 250
# that start with the arm stopped beside the named cube, so the expert corrects a near miss
# (`--near-miss 1`, seeds 4000.., 5000.., 6000.., 7000..); each wave of four recorded side by side
# in real time. A rerun appends to what is there, so an interrupted recording resumes.
DEMO_DATA ?= runs/sim-reach-demos
DEMO_PARTS := a:0 b:1000 c:2000 d:3000
DEMO_NEAR_PARTS := e:4000 f:5000 g:6000 h:7000
DEMO_DEMOS := $(BIN)/edgevla sim demos --task reach --cameras front --size 96
DEMO_PLAIN := --episodes 250 --episode-seconds 4
DEMO_NEAR := --episodes 250 --episode-seconds 3 --near-miss 1
demo-data: venv
	for wave in "$(DEMO_PARTS)|$(DEMO_PLAIN)" "$(DEMO_NEAR_PARTS)|$(DEMO_NEAR)"; do \
	  pids=""; for part in $${wave%%|*}; do \
	    $(DEMO_DEMOS) $${wave#*|} --seed $${part#*:} --dataset $(DEMO_DATA)-$${part%%:*} \
	      > $(DEMO_DATA)-$${part%%:*}.log & pids="$$pids $$!"; \
	  done; for pid in $$pids; do wait $$pid || exit 1; done; \
	done

# The demo policy: pretrain the small VLM to find the named cube on rendered scenes (SmolVLA starts
# from SmolVLM2; the small preset has no such model), fine-tune its action expert on the plain
# demos (6000 steps, then 5000 more at a lower rate from that policy), then 6000 more on those and
# the near-miss demos together; last, 4000 steps of the whole network (VLM unfrozen, mode=full) at
# a third of that rate, from the trained expert. Export (ONNX fp32), quantize (int8), and ship the
# int8 artifact in edgevla/assets/small-reach/ (the VLM base, checkpoints and fp32 stay in runs/).
# docs/SIM.md has the measured figures.
DEMO_VLM ?= runs/small-vlm
DEMO_STAGE1 ?= runs/small-reach-stage1
DEMO_STAGE2 ?= runs/small-reach-stage2
DEMO_STAGE3 ?= runs/small-reach-stage3
DEMO_RUN ?= runs/small-reach
DEMO_ASSET := edgevla/assets/small-reach
demo_sets = $(foreach part,$(1),--dataset $(DEMO_DATA)-$(firstword $(subst :, ,$(part))))
DEMO_SETS = $(call demo_sets,$(DEMO_PARTS))
DEMO_ALL_SETS = $(call demo_sets,$(DEMO_PARTS) $(DEMO_NEAR_PARTS))
demo-train: venv
	$(BIN)/edgevla sim pretrain --recipe recipes/small-cpu.yaml --out $(DEMO_VLM) --frames 12000 --held-out 300 --steps 3000 --batch 24 --lr 6e-4
	$(BIN)/edgevla train --recipe recipes/small-sim-reach.yaml --set base=$(DEMO_VLM) $(DEMO_SETS) --out $(DEMO_STAGE1)
	$(BIN)/edgevla train --recipe recipes/small-sim-reach.yaml --set base=$(DEMO_STAGE1)/policy \
	  --set steps=5000 --set optim.decay_steps=5000 --set optim.lr=3e-4 --set optim.warmup_steps=100 \
	  --set oversample_start.repeat=1 --set seed=2000 $(DEMO_SETS) --out $(DEMO_STAGE2)
	$(BIN)/edgevla train --recipe recipes/small-sim-reach.yaml --set base=$(DEMO_STAGE2)/policy \
	  --set steps=6000 --set optim.decay_steps=6000 --set optim.lr=3e-4 --set optim.warmup_steps=100 \
	  --set oversample_start.repeat=1 --set seed=4000 $(DEMO_ALL_SETS) --out $(DEMO_STAGE3)
	$(BIN)/edgevla train --recipe recipes/small-sim-reach.yaml --set base=$(DEMO_STAGE3)/policy --set mode=full \
	  --set steps=4000 --set optim.decay_steps=4000 --set optim.lr=1e-4 --set optim.warmup_steps=100 \
	  --set oversample_start.repeat=1 --set seed=5000 --set frame_cache_mb=7000 $(DEMO_ALL_SETS) --out $(DEMO_RUN)
	$(BIN)/edgevla export onnx --policy $(DEMO_RUN)/policy --out $(DEMO_RUN)/onnx-fp32
	$(BIN)/edgevla quantize --policy $(DEMO_RUN)/onnx-fp32 --method int8-dynamic --out $(DEMO_RUN)/onnx-int8
	rm -rf $(DEMO_ASSET)/onnx-int8 && mkdir -p $(DEMO_ASSET) && cp -r $(DEMO_RUN)/onnx-int8 $(DEMO_ASSET)/onnx-int8
	$(BIN)/edgevla eval --policy $(DEMO_ASSET)/onnx-int8 --task reach --episodes 10

# fp32 (torch) vs fp32 ONNX vs int8 ONNX, and blend vs rtc vs latest merging, same 50 seeds; then
# int8 clockless with a push at the end of each episode (does it come back to the cube?).
demo-eval: venv
	for p in $(DEMO_RUN)/policy $(DEMO_RUN)/onnx-fp32 $(DEMO_RUN)/onnx-int8; do \
	  $(BIN)/edgevla eval --policy $$p --task reach --episodes 50 --json --episodes-out $$p.episodes.jsonl \
	    > $$p.eval.json || exit 1; done
	for m in blend rtc latest; do \
	  $(BIN)/edgevla eval --policy $(DEMO_RUN)/onnx-int8 --task reach --episodes 50 --merge $$m --json \
	    --episodes-out $(DEMO_RUN)/merge-$$m.episodes.jsonl > $(DEMO_RUN)/merge-$$m.eval.json || exit 1; done
	$(BIN)/edgevla eval --policy $(DEMO_RUN)/onnx-int8 --task reach --episodes 50 --sync 10 --no-bus --push 8 \
	  --json --episodes-out $(DEMO_RUN)/sync-push.episodes.jsonl > $(DEMO_RUN)/sync-push.eval.json

# The dual system against single-rate with the shipped demo policy (docs/DUAL.md): 50 held-out reach
# episodes each through the async runtime, System 2 at 1, 2 and 5 Hz and single-rate; then the same
# clockless with a push at the end of each episode (where stale images should show). Results and
# the load beside each run (uptime.log) in DUAL_OUT.
DUAL_POLICY ?= $(DEMO_ASSET)/onnx-int8
DUAL_OUT ?= runs/dual-eval
DUAL_MODES := single: vlm1:--vlm-hz=1 vlm2:--vlm-hz=2 vlm5:--vlm-hz=5
dual-eval: venv
	mkdir -p $(DUAL_OUT) && rm -f $(DUAL_OUT)/*.episodes.jsonl
	for mode in $(DUAL_MODES); do name=$${mode%%:*}; flags=$${mode#*:}; \
	  echo "$$name: $$(uptime)" >> $(DUAL_OUT)/uptime.log; \
	  $(BIN)/edgevla eval --policy $(DUAL_POLICY) --task reach --episodes 50 $$flags --json \
	    --episodes-out $(DUAL_OUT)/$$name.episodes.jsonl > $(DUAL_OUT)/$$name.eval.json || exit 1; \
	  echo "push-$$name: $$(uptime)" >> $(DUAL_OUT)/uptime.log; \
	  $(BIN)/edgevla eval --policy $(DUAL_POLICY) --task reach --episodes 50 --sync 10 --no-bus --push 8 \
	    $$flags --json --episodes-out $(DUAL_OUT)/push-$$name.episodes.jsonl \
	    > $(DUAL_OUT)/push-$$name.eval.json || exit 1; \
	done

# The action heads compared (docs/HEADS.md): flow, diffusion, regression, bins and fast trained on the
# same demos from one VLM with the same budget, exported, int8-quantized, timed back to back and
# evaluated on reach and reach_either. Stages skip what HEADS_WORK holds, so a rerun continues.
HEADS_WORK ?= runs/heads
HEADS_DATA ?= --dataset runs/reach-demos --dataset runs/either-demos
HEADS_BASE ?= runs/small-reach-recovered/policy
HEADS_STEPS ?= 120
HEADS_EPISODES ?= 20
HEADS_SYNC ?= 10
heads-bench: venv
	$(BIN)/edgevla bench heads $(HEADS_DATA) --base $(HEADS_BASE) --work $(HEADS_WORK) \
	  --train-steps $(HEADS_STEPS) --episodes $(HEADS_EPISODES) --sync $(HEADS_SYNC)

# Correction rounds vs plain demos from a weak policy (docs/CORRECTIONS.md); hours of CPU, needs
# runs/small-vlm from demo-train. Knobs: OUT, BUDGET, ROUNDS, STEPS, WEIGHT, EVAL.
corrections-experiment: venv
	BIN=$(BIN) bash scripts/corrections_experiment.sh
