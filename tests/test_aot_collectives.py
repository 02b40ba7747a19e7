"""research.aot_hlo: the collectives table read from XLA:TPU's compiled HLO, one line per
collective and its result bytes per chip, however the TPU compiler writes it (async copies, -start
tuples, reduce-scatter as a fused all-reduce), and how often each runs through the loops
around it, with the bytes a chip receives. The HLO lines are cut from plans compiled on
this host (libtpu 0.0.42.1); no compile here (tests/test_aot.py checks compiled plans).
"""
from research import aot_hlo


def _written(table: dict) -> dict:
  """Each collective's count and bytes where the program writes it (runs: further below)."""
  return {op: {"count": c["count"], "bytes": c["bytes"]} for op, c in table.items()}


# XLA:TPU's HLO as compiled for the tiny LM with fsdp=4 on v5e:2x2 (lines cut short): one
# async all-gather written in its start fusion, a continuation fusion (layout S(1)) and its
# done fusion, all channel 20; two all-reduces in other computations that share channel 1.
_HLO_ONE_GATHER_THREE_TIMES = """
%fused_computation.737 (param_0.2114: bf16[8,128]) -> bf16[32,128] {
  %all-gather.92 = bf16[32,128]{1,0:T(8,128)(2,1)} all-gather(%param_0.2114), channel_id=20, replica_groups=mesh['axis_0'=4,'axis_1'=1] {'axis_0'}, dimensions={0}
}
%async_collective_fusion.491 (param_0.2118: bf16[8,128]) -> bf16[32,128] {
  %all-gather.94 = bf16[32,128]{1,0:T(8,128)(2,1)S(1)} all-gather(%param_0.2118), channel_id=20, replica_groups=mesh['axis_0'=4,'axis_1'=1] {'axis_0'}, dimensions={0}
}
%fused_computation.744 (param_0.2146: bf16[8,128]) -> bf16[32,128] {
  %all-gather.106 = bf16[32,128]{1,0:T(8,128)(2,1)} all-gather(%param_0.2146), channel_id=20, replica_groups=mesh['axis_0'=4,'axis_1'=1] {'axis_0'}, dimensions={0}
}
%region_1 (input_0: f32[32,512]) -> f32[32,512] {
  %all-reduce.108 = (f32[32,512]{1,0:T(8,128)}) all-reduce(%input_0), channel_id=1, replica_groups={{0,1,2,3}}, use_global_device_ids=true, to_apply=%add.1.clone
}
ENTRY %main {
  %all-reduce = f32[]{:T(128)} all-reduce(%get-tuple-element.924), channel_id=1, replica_groups=mesh['axis_0'=4,'axis_1'=1] {'axis_0','axis_1'}, use_global_device_ids=true
}
"""


def test_a_collective_written_in_several_fusions_counts_once():
  """The all-gather above was counted 3 times (its copies in the continuation and done
  fusions; 410m@v5e:4x4: 12 all-gathers, 0.45 GB, for 4 of 0.11 GB); the two all-reduces
  with one channel_id are two collectives (their shapes differ)."""
  c = _written(aot_hlo.collectives(_HLO_ONE_GATHER_THREE_TIMES))
  assert c["all-gather"] == {"count": 1, "bytes": 32 * 128 * 2}
  assert c["all-reduce"] == {"count": 2, "bytes": 32 * 512 * 4 + 4}


def test_an_async_starts_operand_is_not_counted_as_its_result():
  """XLA:TPU's collective-permute-start (410m@v5e:4x4's FSDP matmul loops) is typed
  (operand, result, u32[], u32[]): its bytes were operand + result + 8, twice the 393,216 B
  it moves (the plan's 60 permutes read 0.11 GB for 0.05); an all-gather-start's type is
  (operand, result) too, an all-reduce-start's is its result."""
  hlo = """
  %collective-permute-start.39 = (bf16[1,64,3072]{2,1,0:T(8,128)(2,1)}, bf16[1,64,3072]{2,1,0:T(8,128)(2,1)}, u32[]{:S(2)}, u32[]{:S(2)}) collective-permute-start(%get-tuple-element.8465), channel_id=5, source_target_pairs={{0,15},{1,0}}
  %collective-permute-done.39 = bf16[1,64,3072]{2,1,0:T(8,128)(2,1)} collective-permute-done(%collective-permute-start.39)
  %all-gather-start = ((bf16[8,128]{1,0}, f32[4]{0}), (bf16[32,128]{1,0}, f32[16]{0})) all-gather-start(%a, %b), channel_id=7, dimensions={0}
  %all-reduce-start = f32[1024]{0} all-reduce-start(%g), channel_id=8, to_apply=%add
  """
  c = _written(aot_hlo.collectives(hlo))
  assert c["collective-permute"] == {"count": 1, "bytes": 64 * 3072 * 2}
  assert c["all-gather"] == {"count": 1, "bytes": 32 * 128 * 2 + 16 * 4}
  assert c["all-reduce"] == {"count": 1, "bytes": 1024 * 4}


def test_an_all_reduce_scatter_fusion_is_a_reduce_scatter_of_the_shards():
  """FSDP's gradient reduce-scatter as XLA:TPU writes it (the tiny LM, fsdp=4, v5e:2x2):
  an all-reduce of whole arrays, each sliced to the chip's quarter, in a computation named
  all-reduce-scatter. It read all-reduce 1 with the whole arrays' bytes, reduce-scatter 0."""
  hlo = """
%all-reduce-scatter.9 (input_0: f32[32,2,16], input_8: f32[32,512]) -> (f32[8,2,16], f32[8,512]) {
  %input_0 = f32[32,2,16]{2,0,1:T(8,128)S(1)} parameter(0)
  %input_8 = f32[32,512]{1,0:T(8,128)S(1)} parameter(1)
  %all-reduce.108 = (f32[32,2,16]{2,0,1:T(8,128)}, f32[32,512]{1,0:T(8,128)}) all-reduce(%input_0, %input_8), channel_id=1, replica_groups={{0,1,2,3}}, use_global_device_ids=true, to_apply=%add.1.clone
  ROOT %tuple.94 = (f32[8,2,16]{2,0,1:T(8,128)S(1)}, f32[8,512]{1,0:T(8,128)S(1)}) tuple(%dynamic-slice.153, %dynamic-slice.161)
}
ENTRY %main.1 (p: f32[]) -> f32[] {
  %all-reduce = f32[]{:T(128)} all-reduce(%p), channel_id=1, replica_groups=mesh['axis_0'=4,'axis_1'=1] {'axis_0','axis_1'}, use_global_device_ids=true, to_apply=%region_0.2.clone
}
"""
  c = _written(aot_hlo.collectives(hlo))
  assert c["reduce-scatter"] == {"count": 1, "bytes": (8 * 2 * 16 + 8 * 512) * 4}
  assert c["all-reduce"] == {"count": 1, "bytes": 4}  # the loss, a true all-reduce


# --- runs: the loops around a collective, and the bytes a chip receives -----------------
# The loop shapes below are XLA:TPU's (1b@v5e:4x4, the tiny LM with fsdp=4 on v5e:2x2, cut
# short): JAX's scans count i < N from a constant 0 by 1; XLA:TPU's windowed matmul loops
# (FSDP's gathers as collective-permutes) are unrolled by 2, so their counter steps by 2.
_LOOPS = """
%cond.steps (p: (s32[], f32[4])) -> pred[] {
  %constant.1 = s32[]{:T(128)} constant(10)
  %p = (s32[]{:T(128)}, f32[4]{0}) parameter(0)
  %gte.1 = s32[]{:T(128)} get-tuple-element(%p), index=0
  ROOT %lt.1 = pred[]{:T(512)} compare(%gte.1, %constant.1), direction=LT, metadata={op_name="jit(run)/while/cond/lt"}
}
%cond.window (w: (bf16[1,128,8192], u32[])) -> pred[] {
  %constant.2 = u32[]{:T(128)} constant(8)
  %w = (bf16[1,128,8192]{2,1,0}, u32[]{:T(128)}) parameter(0)
  %gte.2 = u32[]{:T(128)} get-tuple-element(%w), index=1
  ROOT %compare.3 = pred[]{:T(512)} compare(%gte.2, %constant.2), direction=LT
}
%body.window (w: (bf16[1,128,8192], u32[])) -> (bf16[1,128,8192], u32[]) {
  %w = (bf16[1,128,8192]{2,1,0}, u32[]{:T(128)}) parameter(0)
  %constant.3 = u32[]{:T(128)} constant(2)
  %gte.3 = bf16[1,128,8192]{2,1,0} get-tuple-element(%w), index=0
  %gte.4 = u32[]{:T(128)} get-tuple-element(%w), index=1
  %collective-permute-start.52 = (bf16[1,128,8192]{2,1,0}, bf16[1,128,8192]{2,1,0}, u32[]{:S(2)}, u32[]{:S(2)}) collective-permute-start(%gte.3), channel_id=20, source_target_pairs={{0,3},{1,0},{2,1},{3,2}}
  %collective-permute-done.52 = bf16[1,128,8192]{2,1,0} collective-permute-done(%collective-permute-start.52)
  %add.5 = u32[]{:T(128)} add(%gte.4, %constant.3)
  ROOT %tuple.5 = (bf16[1,128,8192]{2,1,0}, u32[]{:T(128)}) tuple(%collective-permute-done.52, %add.5)
}
%fused_gather (param_0: f32[1,4]) -> f32[4,4] {
  %all-gather.7 = f32[4,4]{1,0} all-gather(%param_0), channel_id=7, replica_groups=mesh['axis_0'=4,'axis_1'=1] {'axis_0'}, dimensions={0}
}
%body.steps (p: (s32[], f32[4])) -> (s32[], f32[4]) {
  %p = (s32[]{:T(128)}, f32[4]{0}) parameter(0)
  %constant.4 = s32[]{:T(128)} constant(1)
  %constant.6 = u32[]{:T(128)} constant(0)
  %copy.6 = u32[]{:T(128)} copy(%constant.6)
  %gte.5 = s32[]{:T(128)} get-tuple-element(%p), index=0
  %x = bf16[1,128,8192]{2,1,0} parameter(1)
  %tuple.6 = (bf16[1,128,8192]{2,1,0}, u32[]{:T(128)}) tuple(%x, %copy.6)
  %while.7 = (bf16[1,128,8192]{2,1,0}, u32[]{:T(128)}) while(%tuple.6), condition=%cond.window, body=%body.window
  %fusion.8 = f32[4,4]{1,0} fusion(%y), kind=kCustom, calls=%fused_gather
  %fusion.9 = f32[4,4]{1,0} fusion(%z), kind=kCustom, calls=%fused_gather
  %all-reduce.10 = f32[1024]{0} all-reduce(%g), channel_id=8, replica_groups={{0,1},{2,3}}, to_apply=%add
  %add.6 = s32[]{:T(128)} add(%gte.5, %constant.4)
  ROOT %tuple.7 = (s32[]{:T(128)}, f32[4]{0}) tuple(%add.6, %y)
}
ENTRY %main (a: f32[4]) -> f32[4] {
  %constant.5 = s32[]{:T(128)} constant(0)
  %tuple.8 = (s32[]{:T(128)}, f32[4]{0}) tuple(%constant.5, %a)
  %while.9 = (s32[]{:T(128)}, f32[4]{0}) while(%tuple.8), condition=%cond.steps, body=%body.steps, metadata={op_name="jit(run)/while"}
  %all-to-all.11 = f32[8]{0} all-to-all(%a), channel_id=9, replica_groups=[2,4]<=[8]
}
"""


def test_runs_multiply_through_nested_loops_and_add_over_call_sites():
  """The step loop runs 10 times (0 to 10 by 1); the windowed loop inside 4 (0 to 8 by 2:
  read as 8, the 1b plan's permutes were counted twice); a computation called from two
  fusions runs twice per trip; the entry once."""
  runs = aot_hlo.runs_per_call(_LOOPS)
  assert runs["%main"] == 1 and runs["%body.steps"] == 10
  assert runs["%body.window"] == 40 and runs["%fused_gather"] == 20


def test_a_collective_runs_as_often_as_its_computation_and_receives_its_share():
  """Bytes received per run: a permute its result; an all-gather of 4 chips the 3/4 of
  its result it lacked; an all-reduce over groups of 2, twice half the array (a ring's
  reduce-scatter then all-gather); an all-to-all of groups of 4 ([2,4]<=[8]) 3/4."""
  c = aot_hlo.collectives(_LOOPS, 8)
  permute, gather = 128 * 8192 * 2, 4 * 4 * 4
  assert c["collective-permute"] == {"count": 1, "bytes": permute, "runs": 40,
                                     "received_bytes": 40 * permute}
  assert c["all-gather"] == {"count": 1, "bytes": gather, "runs": 20,
                             "received_bytes": 20 * gather * 3 // 4}
  assert c["all-reduce"]["runs"] == 10 and c["all-reduce"]["received_bytes"] == 10 * 4096
  assert c["all-to-all"] == {"count": 1, "bytes": 32, "runs": 1, "received_bytes": 24}
  assert aot_hlo.received_bytes(c) == 40 * permute + 20 * 48 + 10 * 4096 + 24


def test_a_reduce_scatter_receives_all_but_one_of_its_shards():
  """The FSDP gradient reduce-scatter of the tiny LM (fsdp=4): a chip ends with one shard
  of the sum, having received 3 shards' partial sums (a ring), 3x the bytes it returns."""
  hlo = """
%all-reduce-scatter.9 (input_8: f32[32,512]) -> f32[8,512] {
  %all-reduce.108 = f32[32,512]{1,0:T(8,128)} all-reduce(%input_8), channel_id=1, replica_groups={{0,1,2,3}}, use_global_device_ids=true, to_apply=%add.1.clone
}
"""
  c = aot_hlo.collectives(hlo)
  assert c["reduce-scatter"]["received_bytes"] == 3 * 8 * 512 * 4


def test_a_loop_whose_count_cannot_be_read_leaves_runs_unknown():
  """A condition other than `i < constant` (here a data-dependent test): the collectives
  under it have runs None and the total received is None, not a guess; XLA's own
  known_trip_count, where written, is taken as it stands."""
  unknown = _LOOPS.replace("compare(%gte.1, %constant.1), direction=LT",
                           "compare(%gte.1, %gte.1), direction=NE")
  c = aot_hlo.collectives(unknown, 8)
  assert c["collective-permute"]["runs"] is None and c["all-gather"]["received_bytes"] is None
  assert c["all-to-all"]["runs"] == 1  # outside the loop: still known
  assert aot_hlo.received_bytes(c) is None
  known = unknown.replace('metadata={op_name="jit(run)/while"}',
                          'backend_config={"known_trip_count":{"n":"3"}}')
  assert aot_hlo.runs_per_call(known)["%body.window"] == 12


def test_a_start_that_is_not_a_constant_leaves_runs_unknown():
  """The windowed loop's counter starting from a parameter, not a copy of a constant."""
  hlo = _LOOPS.replace("tuple(%x, %copy.6)", "tuple(%x, %gte.5)")
  assert aot_hlo.runs_per_call(hlo)["%body.window"] is None
  assert aot_hlo.runs_per_call(hlo)["%body.steps"] == 10


def test_a_counter_updated_through_a_copy_is_still_counted():
  """XLA:TPU's windowed loops under remat dots (6p9b@v5e:4x4) put the counter's add behind a
  copy in the body's tuple: runs read None there, so the cell's comms/step printed "?".
  Control: a copy of something other than an add of a constant stays unknown."""
  copied = _LOOPS.replace(
      "  ROOT %tuple.5 = (bf16[1,128,8192]{2,1,0}, u32[]{:T(128)}) tuple(%collective-permute-done.52, %add.5)",
      "  %copy.7 = u32[]{:T(128)} copy(%add.5)\n"
      "  ROOT %tuple.5 = (bf16[1,128,8192]{2,1,0}, u32[]{:T(128)}) tuple(%collective-permute-done.52, %copy.7)")
  assert copied != _LOOPS and aot_hlo.runs_per_call(copied)["%body.window"] == 40
  stuck = copied.replace("copy(%add.5)", "copy(%gte.4)")
  assert aot_hlo.runs_per_call(stuck)["%body.window"] is None


def test_an_all_reduce_of_zero_padded_shards_is_said_to_gather():
  """1b@v5p:4x4x4 (FSDP over 64 chips): XLA:TPU wrote its weight all-gathers as all-reduces
  of shards placed in zeros, so the table read no all-gather at all; they stay all-reduces
  (their bytes are an all-reduce's) and are counted as gathers; a gradient all-reduce is not."""
  hlo = """
  %all-reduce.163 = bf16[2048,50304]{1,0:T(8,128)(2,1)} all-reduce(%constant_dynamic-update-slice_fusion.12), channel_id=39, replica_groups=mesh['axis_0'=64,'axis_1'=1] {'axis_0'}, use_global_device_ids=true, to_apply=%add.24
  %all-reduce.166 = bf16[2048,50304]{1,0:T(8,128)(2,1)} all-reduce(%convolution_bitcast_fusion.3), channel_id=44, replica_groups=mesh['axis_0'=64,'axis_1'=1] {'axis_0'}, use_global_device_ids=true, to_apply=%add.4.clone
  """
  row = aot_hlo.collectives(hlo)["all-reduce"]
  assert row["count"] == 2 and row["gathers"] == 1
  each = 2048 * 50304 * 2  # bf16
  assert row["received_bytes"] == 2 * (2 * (each * 63 // 64))  # two all-reduces, ring cost


def test_copies_of_one_collective_run_as_its_least_run_copy_and_entry_may_lack_a_sigil():
  """An async all-gather's continuation copies sit in the windowed loop (40 runs here) and
  its start in a fusion run 20 times: the collective runs 20 times whichever is printed
  first (the first copy decided before). An `ENTRY main` header without '%' was read as
  part of the computation above it, its loop not followed."""
  copy = ("  %all-gather.8 = f32[4,4]{1,0} all-gather(%gte.3), channel_id=7, "
          "replica_groups=mesh['axis_0'=4,'axis_1'=1] {'axis_0'}, dimensions={0}\n")
  hlo = _LOOPS.replace("  %add.5 = u32[]", copy + "  %add.5 = u32[]")
  c = aot_hlo.collectives(hlo, 8)
  assert c["all-gather"]["count"] == 1 and c["all-gather"]["runs"] == 20
  bare = _LOOPS.replace("ENTRY %main (a: f32[4])", "ENTRY main (a: f32[4])")
  runs = aot_hlo.runs_per_call(bare)
  assert runs["main"] == 1 and runs["%body.window"] == 40


def test_a_loop_whose_bound_is_no_multiple_of_its_step_rounds_its_trips_up():
  """i = 0, 2, 4, 6 < 7: four trips in each of the 10 steps, 40 runs (floor division read 3:
  a mutation audit's undercount of the collectives and the ICI bound went unseen, the
  fixture's bounds being multiples of their steps)."""
  hlo = _LOOPS.replace("%constant.2 = u32[]{:T(128)} constant(8)",
                       "%constant.2 = u32[]{:T(128)} constant(7)")
  assert hlo != _LOOPS
  runs = aot_hlo.runs_per_call(hlo)
  assert runs["%body.steps"] == 10 and runs["%body.window"] == 40
  assert aot_hlo.collectives(hlo, 4)["collective-permute"]["runs"] == 40


def test_a_mesh_group_over_several_axes_has_the_product_of_their_sizes():
  """replica_groups=mesh['axis_0'=2,'axis_1'=4] {'axis_0','axis_1'}: groups of 2 x 4 = 8
  chips, whose all-gather of 256 bytes a chip receives 7/8 of; over 'axis_1' alone, groups of
  4 (3/4). The fixtures' meshes had a size-1 axis, where a sum of the sizes (4 + 1 = 5) gave
  the same ring bytes for an f32[] all-reduce: a mutation audit's sum went unseen."""
  line = ("  %all-gather.{n} = f32[64]{{0}} all-gather(%p.{n}), channel_id={n}, "
          "replica_groups=mesh['axis_0'=2,'axis_1'=4] {{{axes}}}, dimensions={{0}}\n")
  both = aot_hlo.collectives(line.format(n=1, axes="'axis_0','axis_1'"), 8)["all-gather"]
  assert (both["count"], both["bytes"], both["received_bytes"]) == (1, 256, 256 * 7 // 8)
  one = aot_hlo.collectives(line.format(n=2, axes="'axis_1'"), 8)["all-gather"]
  assert one["received_bytes"] == 256 * 3 // 4


def test_the_runs_and_bytes_of_several_collectives_of_one_op_add_up():
  """Two all-gathers (channels 1 and 2), each run once: the op's row counts 2 collectives,
  2 runs and both received shares (3/4 of 256 bytes each, groups of 4)."""
  line = ("  %all-gather.{n} = f32[64]{{0}} all-gather(%p.{n}), channel_id={n}, "
          "replica_groups=mesh['axis_0'=4,'axis_1'=1] {{'axis_0'}}, dimensions={{0}}\n")
  row = aot_hlo.collectives(line.format(n=1) + line.format(n=2), 4)["all-gather"]
  assert row == {"count": 2, "bytes": 512, "runs": 2, "received_bytes": 2 * 192}
