/// Block sizes of the tiled kernels.
///
/// 64 query rows × 64 keys. The forward's working set per lane — the transposed query block
/// Qᵀ (headDim × 64), the score tile Sᵀ (64 × 64), the output accumulator (64 × headDim) and the
/// K/V rows being read (64 × headDim each) — is 4 × 64 × 128 + 64 × 64 floats = 144 KiB at
/// headDim 128 (80 KiB at 64): it stays in the 1 MiB L2 of a core here, and the register
/// kernel's B operand (Qᵀ at 32 KiB, or one V block) in the 48 KiB L1.
struct TileShape: Sendable {
  /// Query rows per block; also the leading dimension of Qᵀ and Sᵀ tiles (a multiple of 16, as
  /// the column kernels require).
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

  /// `rows` rounded up to the column kernels' multiple of 16.
  static func padded(_ rows: Int) -> Int { (rows + 15) / 16 * 16 }
}
