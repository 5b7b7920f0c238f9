import Foundation

/// NVRTC, CUDA's run-time compiler, opened with `dlopen` (see `LibrarySearch` for where it
/// is looked for). It compiles generated CUDA C++ straight to CUBIN for one arch; it needs
/// no GPU, so kernels can be compiled (and checked) on any machine that has it.
public final class NVRTC: @unchecked Sendable {
  typealias Program = OpaquePointer
  private typealias CreateProgram =
    @convention(c) (
      UnsafeMutablePointer<Program?>, UnsafePointer<CChar>, UnsafePointer<CChar>?, Int32,
      UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?
    ) -> Int32
  private typealias CompileProgram = @convention(c) (Program, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
  private typealias SizeQuery = @convention(c) (Program, UnsafeMutablePointer<Int>) -> Int32
  private typealias BytesQuery = @convention(c) (Program, UnsafeMutablePointer<CChar>) -> Int32

  public let library: DynamicLibrary
  /// `(major, minor)` from `nvrtcVersion`.
  public let version: (major: Int, minor: Int)
  private let createProgram: CreateProgram
  private let compileProgram: CompileProgram
  private let destroyProgram: @convention(c) (UnsafeMutablePointer<Program?>) -> Int32
  private let getLogSize: SizeQuery
  private let getLog: BytesQuery
  private let getCubinSize: SizeQuery
  private let getCubin: BytesQuery
  private let getErrorString: @convention(c) (Int32) -> UnsafePointer<CChar>?
  private let getNumSupportedArchs: (@convention(c) (UnsafeMutablePointer<Int32>) -> Int32)?
  private let getSupportedArchs: (@convention(c) (UnsafeMutablePointer<Int32>) -> Int32)?

  /// The file that was loaded.
  public var path: String { library.path }
  public var versionString: String { "\(version.major).\(version.minor)" }
  /// What the kernel cache keys on: `nvrtcVersion` only tells major.minor, so the size of
  /// the library file is added to tell patch releases (13.0.48 from 13.0.88) apart.
  public var identity: String {
    let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    return "\(versionString)/\(size)"
  }

  init(library l: DynamicLibrary) throws(CUDAError) {
    library = l
    let versionFunction: @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Int32 =
      try l.require("nvrtcVersion")
    var major: Int32 = 0
    var minor: Int32 = 0
    _ = versionFunction(&major, &minor)
    version = (Int(major), Int(minor))
    createProgram = try l.require("nvrtcCreateProgram")
    compileProgram = try l.require("nvrtcCompileProgram")
    destroyProgram = try l.require("nvrtcDestroyProgram")
    getLogSize = try l.require("nvrtcGetProgramLogSize")
    getLog = try l.require("nvrtcGetProgramLog")
    getCubinSize = try l.require("nvrtcGetCUBINSize")
    getCubin = try l.require("nvrtcGetCUBIN")
    getErrorString = try l.require("nvrtcGetErrorString")
    getNumSupportedArchs = l.function("nvrtcGetNumSupportedArchs")
    getSupportedArchs = l.function("nvrtcGetSupportedArchs")
  }

  /// Finds and opens NVRTC once per process (the search order is `LibrarySearch`'s).
  /// Before each candidate its `libnvrtc-builtins` neighbour is preloaded: NVRTC opens that
  /// library by soname, which a wheel's folder is not on the loader's path for.
  public static func shared() throws(CUDAError) -> NVRTC { try loaded.get() }

  private static let loaded: Result<NVRTC, CUDAError> = {
    do throws(CUDAError) {
      let library = try LibrarySearch.open(.nvrtc, probeSymbol: "nvrtcVersion") { candidate in
        guard candidate.contains("/") else { return }
        let folder = (candidate as NSString).deletingLastPathComponent
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        for name in names.sorted() where name.hasPrefix("libnvrtc-builtins.so.") && !name.contains(".alt.") {
          _ = DynamicLibrary.preload(folder + "/" + name)
        }
      }
      return .success(try NVRTC(library: library))
    } catch {
      return .failure(error)
    }
  }()

  /// Archs this NVRTC can target, e.g. `[75, 80, 86, 87, 89, 90, 100, …]`.
  public var supportedArchs: [Int] {
    guard let getNumSupportedArchs, let getSupportedArchs else { return [] }
    var n: Int32 = 0
    guard getNumSupportedArchs(&n) == 0, n > 0 else { return [] }
    var archs = [Int32](repeating: 0, count: Int(n))
    guard getSupportedArchs(&archs) == 0 else { return [] }
    return archs.map(Int.init)
  }

  /// The options every kernel is compiled with, besides the arch: C++17, ptxas's resource
  /// report in the log, and no default include paths (our sources include nothing).
  public static func options(for arch: GPUArch, extra: [String] = []) -> [String] {
    ["--gpu-architecture=\(arch.rawValue)", "-std=c++17", "--ptxas-options=-v", "--no-source-include"] + extra
  }

  /// The result of one compilation.
  public struct Output: Sendable {
    public var cubin: [UInt8]
    public var log: String
  }

  /// Compiles `source` with `options` to CUBIN. On a compile error throws
  /// `CUDAError.compilation` with NVRTC's log (`sourcePath` is filled in by the caller that
  /// saved the source).
  public func compile(source: String, name: String, options: [String]) throws(CUDAError) -> Output {
    var program: Program? = nil
    try check(createProgram(&program, source, name + ".cu", 0, nil, nil), "nvrtcCreateProgram")
    guard let program else { throw .nvrtc(function: "nvrtcCreateProgram", code: -1, name: "no program") }
    defer {
      var p: Program? = program
      _ = destroyProgram(&p)
    }
    let cOptions = options.map { strdup($0) }
    defer { cOptions.forEach { free($0) } }
    let constOptions = cOptions.map { UnsafePointer<CChar>($0) }
    let code = constOptions.withUnsafeBufferPointer { compileProgram(program, Int32(options.count), $0.baseAddress) }
    let log = programLog(program)
    // NVRTC_ERROR_COMPILATION = 6: the source is at fault; the log says why.
    if code == 6 { throw .compilation(kernel: name, log: log, sourcePath: nil) }
    try check(code, "nvrtcCompileProgram")
    var size = 0
    try check(getCubinSize(program, &size), "nvrtcGetCUBINSize")
    var cubin = [UInt8](repeating: 0, count: size)
    let code2 = cubin.withUnsafeMutableBytes { getCubin(program, $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
    try check(code2, "nvrtcGetCUBIN")
    return Output(cubin: cubin, log: log)
  }

  private func programLog(_ program: Program) -> String {
    var size = 0
    guard getLogSize(program, &size) == 0, size > 1 else { return "" }
    var buffer = [CChar](repeating: 0, count: size)
    guard getLog(program, &buffer) == 0 else { return "" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  private func check(_ code: Int32, _ function: String) throws(CUDAError) {
    guard code != 0 else { return }
    let name = getErrorString(code).map { String(cString: $0) } ?? "NVRTC_ERROR_\(code)"
    throw .nvrtc(function: function, code: code, name: name)
  }
}
