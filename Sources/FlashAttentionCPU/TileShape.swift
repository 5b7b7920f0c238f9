/// Block sizes of the tiled kernels.
///
/// 64 query rows × 64 keys: with headDim ≤ 128 the forward's working set (Q block, Kᵀ and V
/// blocks, S and the O accumulator: 5 × 64 × 128 floats = 160 KiB at most, 80 KiB at headDim 64)
/// stays in L2, and the key blocks in L1 while they are read.
struct TileShape: Sendable {
  /// Query rows per block.
  var queryRows: Int
  /// Keys per block.
  var keys: Int
  /// Leading dimension of row-major (rows × headDim) tiles: headDim rounded up to whole cache
  /// lines, so that every row starts 64-byte aligned.
  var headStride: Int

  init(headDim: Int, queryRows: Int = 64, keys: Int = 64) {
    self.queryRows = queryRows
    self.keys = keys
    headStride = (headDim + 15) / 16 * 16
  }
}
