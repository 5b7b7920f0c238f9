import FlashAttention

/// cuBLAS, opened with `dlopen` like the driver (`libcublas.so.13`/`.12`, searched where
/// NVRTC is: `FLASH_ATTN_CUBLAS`, the toolkit, the `nvidia-cublas` wheels), for the
/// matrix products of standard attention.
public final class CUBLASLibrary: @unchecked Sendable {
  typealias Handle = OpaquePointer
  typealias GemmBatchedEx =
    @convention(c) (
      Handle, Int32, Int32, Int32, Int32, Int32, UnsafeRawPointer, UnsafeRawPointer, Int32, Int32,
      UnsafeRawPointer, Int32, Int32, UnsafeRawPointer, UnsafeMutableRawPointer, Int32, Int32, Int32, Int32, Int32
    ) -> Int32

  public let library: DynamicLibrary
  let create: @convention(c) (UnsafeMutablePointer<Handle?>) -> Int32
  let destroy: @convention(c) (Handle) -> Int32
  let setStream: @convention(c) (Handle, OpaquePointer?) -> Int32
  let getVersion: @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
  let gemmBatchedEx: GemmBatchedEx
  let statusName: (@convention(c) (Int32) -> UnsafePointer<CChar>?)?

  public var path: String { library.path }
  /// `major.minor.patch` from `cublasGetProperty` (no GPU needed).
  public let version: String

  init(library l: DynamicLibrary) throws(CUDAError) {
    library = l
    create = try l.require("cublasCreate_v2")
    destroy = try l.require("cublasDestroy_v2")
    setStream = try l.require("cublasSetStream_v2")
    getVersion = try l.require("cublasGetVersion_v2")
    gemmBatchedEx = try l.require("cublasGemmBatchedEx")
    statusName = l.function("cublasGetStatusName")
    let property: (@convention(c) (Int32, UnsafeMutablePointer<Int32>) -> Int32)? = l.function("cublasGetProperty")
    var parts: [String] = []
    for kind: Int32 in 0...2 {
      var value: Int32 = 0
      if let property, property(kind, &value) == 0 { parts.append(String(value)) }
    }
    version = parts.isEmpty ? "unknown" : parts.joined(separator: ".")
  }

  public static func shared() throws(CUDAError) -> CUBLASLibrary { try loaded.get() }

  private static let loaded: Result<CUBLASLibrary, CUDAError> = {
    do throws(CUDAError) {
      return .success(try CUBLASLibrary(library: LibrarySearch.open(.cublas, probeSymbol: "cublasCreate_v2")))
    } catch {
      return .failure(error)
    }
  }()

  func check(_ status: Int32, _ function: String) throws(CUDAError) {
    guard status != 0 else { return }
    let name = statusName?(status).map { String(cString: $0) } ?? "CUBLAS_STATUS_\(status)"
    throw .cublas(function: function, status: status, name: name)
  }
}

/// A cuBLAS handle bound to one device and stream.
final class CUBLASHandle: @unchecked Sendable {
  let library: CUBLASLibrary
  let handle: CUBLASLibrary.Handle
  let device: CUDADevice
  /// `cublasGetVersion`, e.g. 130001.
  let version: Int

  init(device: CUDADevice, stream: CUDAStream) throws(CUDAError) {
    library = try CUBLASLibrary.shared()
    self.device = device
    try device.makeCurrent()
    var h: CUBLASLibrary.Handle? = nil
    try library.check(library.create(&h), "cublasCreate_v2")
    guard let h else { throw .cublas(function: "cublasCreate_v2", status: -1, name: "no handle") }
    handle = h
    try library.check(library.setStream(h, stream.rawHandle), "cublasSetStream_v2")
    var v: Int32 = 0
    _ = library.getVersion(h, &v)
    version = Int(v)
  }

  deinit {
    try? device.makeCurrent()
    _ = library.destroy(handle)
  }

  /// `cudaDataType` of a storage dtype.
  static func dataType(_ d: DType) -> Int32 {
    switch d {
    case .float32: 0  // CUDA_R_32F
    case .float16: 2  // CUDA_R_16F
    case .bfloat16: 14  // CUDA_R_16BF
    }
  }

  /// Batched row-major products `C[i] = alpha · op(A[i]) · op(B[i]) + beta · C[i]` with
  /// float32 accumulation, where `a`, `b`, `c` are device arrays of `batch` device pointers.
  /// `op(A)` is M×K (`A` stored K×M when `transA`), `op(B)` K×N; leading dimensions are row
  /// pitches in elements. cuBLAS is column-major, so this computes Cᵀ = op(B)ᵀ·op(A)ᵀ.
  func gemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: UInt64, aType: DType, lda: Int, b: UInt64, bType: DType, ldb: Int,
    beta: Float, c: UInt64, cType: DType, ldc: Int, batch: Int
  ) throws(CUDAError) {
    for (name, value) in [("m", m), ("n", n), ("k", k), ("lda", lda), ("ldb", ldb), ("ldc", ldc), ("batch", batch)]
    where value > Int(Int32.max) || value < 1 {
      throw .invalidRequest("cuBLAS gemm: \(name) = \(value) is outside 1...\(Int32.max)")
    }
    try device.makeCurrent()
    var alphaValue = alpha
    var betaValue = beta
    let status = withUnsafePointer(to: &alphaValue) { alphaPointer in
      withUnsafePointer(to: &betaValue) { betaPointer in
        library.gemmBatchedEx(
          handle, transB ? 1 : 0, transA ? 1 : 0, Int32(n), Int32(m), Int32(k), alphaPointer,
          UnsafeRawPointer(bitPattern: UInt(b))!, Self.dataType(bType), Int32(ldb),
          UnsafeRawPointer(bitPattern: UInt(a))!, Self.dataType(aType), Int32(lda), betaPointer,
          UnsafeMutableRawPointer(bitPattern: UInt(c))!, Self.dataType(cType), Int32(ldc), Int32(batch),
          68,  // CUBLAS_COMPUTE_32F
          -1)  // CUBLAS_GEMM_DEFAULT
      }
    }
    try library.check(status, "cublasGemmBatchedEx(\(m)x\(n)x\(k), batch \(batch))")
  }
}
