import FlashAttention

/// Plans launches of the Hopper forward (`HopperForwardSource`) for one problem.
///
/// Use `supports` first: a problem it rejects takes the FlashAttention-2 path. `plan`
/// asks `encodeTensorMap` for the Q, K and V tensor maps (the device addresses are only
/// known to the caller) and returns one launch writing O `(batch, seqlenQ, heads, headDim)`
/// and LSE `(batch, heads, seqlenQ)` float32, exactly like the FlashAttention-2 forward.
public enum HopperForwardPlanner {
  /// Why the Hopper path cannot take a problem, or nil when it can.
  public static func unsupportedReason(
    problem: AttentionProblem, dtype: DType, arch: GPUArch,
    q: DeviceTensorRef, k: DeviceTensorRef, v: DeviceTensorRef, output: DeviceTensorRef
  ) -> String? {
    guard arch == .sm90a else { return "arch \(arch.rawValue) is not sm_90a" }
    guard dtype == .float16 || dtype == .bfloat16 else { return "dtype \(dtype) is not fp16/bf16" }
    guard HopperForwardConfig.supportedHeadDims.contains(problem.headDim) else {
      return "headDim \(problem.headDim) is not 64, 128 or 256"
    }
    // The online softmax takes the row maximum of the raw scores: valid for scale > 0.
    guard problem.scale > 0 else { return "scale \(problem.scale) is not positive" }
    // TMA: 16-byte aligned base, byte strides multiples of 16; the epilogue stores pairs.
    for (name, t) in [("q", q), ("k", k), ("v", v)] {
      guard t.address % 16 == 0 else { return "\(name) is not 16-byte aligned" }
      for stride in [t.strides.seqlen, t.strides.head, t.strides.batch] where (stride * 2) % 16 != 0 {
        return "a stride of \(name) (\(stride) elements) is not a multiple of 8"
      }
    }
    guard output.address % 4 == 0,
      [output.strides.seqlen, output.strides.head, output.strides.batch].allSatisfy({ $0 % 2 == 0 })
    else { return "output strides are not even" }
    guard problem.seqlenQ < Int(Int32.max) / 2, problem.seqlenK < Int(Int32.max) / 2 else {
      return "sequence too long for 32-bit TMA coordinates"
    }
    return nil
  }

  /// The launch of the tuned variant (or `config`). Throws `.unsupported` when
  /// `unsupportedReason` is set. `multiprocessorCount` sizes the grid of a persistent launch
  /// (`persistent` overrides the block table's choice). `tileCounter`: the address of
  /// `tileCounterBytes` in device memory whose first two int32 are zero before the first
  /// launch: a dynamically scheduled variant claims tiles from them (and zeroes them again as
  /// it ends) and hands each tile to its consumers through a slot per CTA after them. One per
  /// stream, as two such launches running at once would share it. Without it the table's
  /// dynamic variants give way to their statically scheduled twins.
  public static func plan(
    problem: AttentionProblem, dtype: DType, arch: GPUArch,
    q: DeviceTensorRef, k: DeviceTensorRef, v: DeviceTensorRef,
    output: DeviceTensorRef, lse: UInt64,
    config: HopperForwardConfig? = nil, persistent: Bool? = nil, multiprocessorCount: Int? = nil,
    tileCounter: UInt64? = nil, encodeTensorMap: TensorMapEncoder
  ) throws(AttentionError) -> [KernelLaunch] {
    if let reason = unsupportedReason(problem: problem, dtype: dtype, arch: arch, q: q, k: k, v: v, output: output) {
      throw .unsupported(argument: "problem", value: reason, supported: "the FlashAttention-2 path")
    }
    let causal = problem.mask == .causal
    var entry = HopperBlockTable.entry(headDim: problem.headDim, causal: causal, seqlenK: problem.seqlenK)
    if entry.dynamicScheduler && (tileCounter == nil || multiprocessorCount == nil) {
      entry = HopperBlockTable.staticTwin(of: entry, causal: causal)
    }
    if entry.tmaStoreO && !tmaCanStore(output) {
      entry = HopperBlockTable.directStoreTwin(of: entry)
    }
    let c = config ?? HopperForwardConfig.config(dtype: dtype, headDim: problem.headDim, causal: causal, entry: entry)
    guard c.isValid, c.headDim == problem.headDim, c.dtype == dtype, c.causal == (problem.mask == .causal),
      !c.tmaStoreO || tmaCanStore(output)
    else {
      throw .invalidArgument(argument: "config", value: c.name, expected: "a valid variant for \(problem)")
    }
    if c.dynamicScheduler && (tileCounter ?? 0) == 0 {
      throw .invalidArgument(argument: "tileCounter", value: "none", expected: "a zeroed int32[2] for \(c.name)")
    }
    let dataType = dtype == .bfloat16 ? TensorMapRequest.bfloat16DataType : TensorMapRequest.float16DataType
    func request(_ t: DeviceTensorRef, seqlen: Int, heads: Int, rows: Int) -> TensorMapRequest {
      TensorMapRequest(
        dataType: dataType, globalAddress: t.address,
        globalDims: [UInt64(problem.headDim), UInt64(seqlen), UInt64(heads), UInt64(problem.batch)],
        globalStrides: [UInt64(t.strides.seqlen * 2), UInt64(t.strides.head * 2), UInt64(t.strides.batch * 2)],
        boxDims: [64, UInt32(rows), 1, 1])
    }
    let mapQ = try encodeTensorMap(request(q, seqlen: problem.seqlenQ, heads: problem.queryHeads, rows: c.blockM))
    let mapK = try encodeTensorMap(request(k, seqlen: problem.seqlenK, heads: problem.keyValueHeads, rows: c.blockN))
    let mapV = try encodeTensorMap(request(v, seqlen: problem.seqlenK, heads: problem.keyValueHeads, rows: c.blockN))
    // O as a TMA store target (box of 64 rows: one consumer warpgroup's rows), only for the
    // variants whose epilogue stores through shared memory.
    let mapO = c.tmaStoreO
      ? try encodeTensorMap(request(output, seqlen: problem.seqlenQ, heads: problem.queryHeads, rows: 64)) : nil
    for map in [mapQ, mapK, mapV] + (mapO.map { [$0] } ?? []) where map.count != TensorMapRequest.encodedByteCount {
      throw .backendFailure(backend: "cuda", message: "tensor map encoder returned \(map.count) bytes, expected 128")
    }
    let mBlocks = (problem.seqlenQ + c.blockM - 1) / c.blockM
    let tiles = mBlocks * problem.queryHeads * problem.batch
    guard tiles < Int(Int32.max) else {
      throw .unsupported(argument: "problem", value: "\(tiles) query tiles", supported: "fewer than 2^31")
    }
    // Persistent: one CTA per multiprocessor walks the tiles; otherwise one CTA per tile.
    let wantsPersistent = persistent ?? entry.persistent
    let ctas: Int
    if c.dynamicScheduler, let sms = multiprocessorCount, sms >= 1 {
      // Any count works (tiles are claimed, not dealt) up to the counter buffer's slots.
      ctas = min(tiles, sms, tileCounterBytes / 4 - 2)
    } else if wantsPersistent, let sms = multiprocessorCount, sms >= 1 {
      ctas = min(tiles, persistentGridSize(multiprocessors: sms, queryBlocks: mBlocks))
    } else {
      ctas = tiles
    }
    var params = FixedOffsetBytes(size: HopperForwardSource.ParamsLayout.size)
    typealias L = HopperForwardSource.ParamsLayout
    params.put(mapQ, at: L.tensorMapQ)
    params.put(mapK, at: L.tensorMapK)
    params.put(mapV, at: L.tensorMapV)
    if let mapO { params.put(mapO, at: L.tensorMapO) }
    params.put(output.address, at: L.output)
    params.put(lse, at: L.lse)
    params.put(Int64(output.strides.batch), at: L.outputBatchStride)
    params.put(Int64(output.strides.seqlen), at: L.outputSeqStride)
    params.put(Int64(output.strides.head), at: L.outputHeadStride)
    params.put(Int32(problem.seqlenQ), at: L.seqlenQ)
    params.put(Int32(problem.seqlenK), at: L.seqlenK)
    params.put(Int32(problem.queryHeads), at: L.heads)
    params.put(Int32(problem.groupSize), at: L.headsPerKeyValueHead)
    params.put(Int32(mBlocks), at: L.queryBlocks)
    params.put(problem.scale * Float(1.4426950408889634), at: L.scaleLog2)
    params.put(Int32(tiles), at: L.tiles)
    params.put(tileCounter ?? 0, at: L.tileCounter)
    params.put(Int32(causal && c.dynamicScheduler ? tileGroup(problem: problem) : 1), at: L.tileGroup)
    let kernel = HopperForwardSource.generate(c)
    return [
      KernelLaunch(
        kernel: kernel, entryPoint: c.name,
        grid: Dim3(ctas),
        block: Dim3(c.threadsPerBlock),
        dynamicSharedMemoryBytes: c.sharedMemoryBytes,
        parameterBlock: params.bytes)
    ]
  }

  /// Whether a TMA store can write `output`: 16-byte-aligned base and 16-byte-multiple strides.
  static func tmaCanStore(_ output: DeviceTensorRef) -> Bool {
    output.address % 16 == 0
      && [output.strides.seqlen, output.strides.head, output.strides.batch].allSatisfy { ($0 * 2) % 16 == 0 }
  }

  /// Heads·batch indices whose tiles a dynamically scheduled causal launch claims together
  /// (`decode_tile`): as many query heads as have their K and V in `tileGroupKeyValueBytes`,
  /// so the group's K/V stays in L2 while its tiles run longest first. Claimed one head after
  /// another instead, the last heads' longest tiles start near the end of the launch: a
  /// list-scheduling model of 132 CTAs puts that 5–7% above the ideal makespan at 2k–8k,
  /// against under 0.5% with these groups at 4k–8k. Measured on an H200 (runs 36–37, same
  /// kernel, same process): headDim 128 causal 4k +4–6%, 8k +4–5%, headDim 256 causal 2k +8–11%.
  public static func tileGroup(problem: AttentionProblem) -> Int {
    let keyValueBytes = problem.seqlenK * problem.headDim * 2 * 2  // K and V of one head, 16-bit
    let keyValueHeads = max(1, tileGroupKeyValueBytes / max(1, keyValueBytes))
    return min(problem.queryHeads * problem.batch, keyValueHeads * problem.groupSize)
  }
  /// The K/V footprint a tile group aims at: a third of the H100/H200's 50–60 MB L2.
  public static let tileGroupKeyValueBytes = 16 << 20

  /// Bytes of the tile-counter buffer a dynamically scheduled launch needs (two counters and a
  /// hand-over slot for each of up to 1022 CTAs).
  public static let tileCounterBytes = 4096

  /// CTAs of a persistent launch: the largest count ≤ `multiprocessors` that shares no factor
  /// with `queryBlocks`. Tiles are dealt round-robin (tile = cta + k · grid) with the query
  /// block fastest, so with a grid that is a multiple of `queryBlocks` (132 = 4 · 33 with 4
  /// blocks at seqlen 512) every CTA would get the same query block for ever — under causal
  /// the longest CTA does 4× the average. Coprime, each CTA cycles through all of them.
  public static func persistentGridSize(multiprocessors: Int, queryBlocks: Int) -> Int {
    func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
    var c = max(1, multiprocessors)
    while c > 1 && gcd(c, max(1, queryBlocks)) != 1 && c > multiprocessors - 8 { c -= 1 }
    return gcd(c, max(1, queryBlocks)) == 1 ? c : multiprocessors
  }

  /// Every variant the planner can choose on sm_90a (for `flash-attn kernels --compile`).
  public static func catalog(dtypes: [DType] = [.float16, .bfloat16]) -> [GeneratedKernel] {
    var kernels: [GeneratedKernel] = []
    for dtype in dtypes {
      for headDim in HopperForwardConfig.supportedHeadDims.sorted() {
        for causal in [false, true] {
          for entry in HopperBlockTable.entries(headDim: headDim, causal: causal) {
            let c = HopperForwardConfig.config(dtype: dtype, headDim: headDim, causal: causal, entry: entry)
            kernels.append(HopperForwardSource.generate(c))
          }
        }
      }
    }
    return kernels
  }
}

/// Little-endian bytes of a C struct, written field by field at fixed offsets.
struct FixedOffsetBytes {
  var bytes: [UInt8]
  init(size: Int) { bytes = [UInt8](repeating: 0, count: size) }
  mutating func put(_ raw: [UInt8], at offset: Int) {
    bytes.replaceSubrange(offset..<offset + raw.count, with: raw)
  }
  mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
    withUnsafeBytes(of: value.littleEndian) { put(Array($0), at: offset) }
  }
  mutating func put(_ value: Float, at offset: Int) { put(value.bitPattern, at: offset) }
}
