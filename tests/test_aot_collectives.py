"""research.aot_hlo: the collectives table read from XLA:TPU's compiled HLO, one line per
collective and its result bytes per chip, however the TPU compiler writes it (async copies, -start
tuples, reduce-scatter as a fused all-reduce). The HLO lines are cut from plans compiled on
this host (libtpu 0.0.42.1); no compile here.
"""
from research import aot_hlo


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
  c = aot_hlo.collectives(_HLO_ONE_GATHER_THREE_TIMES)
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
  c = aot_hlo.collectives(hlo)
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
  c = aot_hlo.collectives(hlo)
  assert c["reduce-scatter"] == {"count": 1, "bytes": (8 * 2 * 16 + 8 * 512) * 4}
  assert c["all-reduce"] == {"count": 1, "bytes": 4}  # the loss, a true all-reduce
