/// Block sizes of the tiled kernels.
///
/// 64 keys per block; 64 query rows in the backward, up to 256 in the forward
/// (`FlashForward.queryRows`). The forward's working set per lane at 256 rows and headDim 128 —
/// Qᵀ (128 × 256), Sᵀ (64 × 256), the O accumulator (256 × 128) and the packed K and V blocks
/// (64 × 128 each) — is 416 KiB, within the 1 MiB L2 of a core here; the backward's at 64 rows
/// is about 260 KiB.
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
