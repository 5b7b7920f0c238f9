#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// A shared library opened with `dlopen` at run time, so that the package neither links
/// against CUDA nor needs its headers: where a library is absent, opening it is an error
/// value, not a failed build or a crash.
///
/// Libraries are never closed: the CUDA driver and NVRTC keep global state that must
/// outlive every module and context made from them.
public final class DynamicLibrary: @unchecked Sendable {
  /// What was passed to `dlopen` (a path or a bare soname).
  public let requestedName: String
  /// The file the dynamic loader actually mapped (from `dladdr`), or `requestedName`
  /// when it cannot be told.
  public let path: String
  let handle: UnsafeMutableRawPointer

  private init(requestedName: String, path: String, handle: UnsafeMutableRawPointer) {
    self.requestedName = requestedName
    self.path = path
    self.handle = handle
  }

  /// Opens `name` (a path, or a soname searched the usual way) with `RTLD_NOW`.
  /// `probeSymbol` is a function the library must export; it is also used to find out
  /// which file was loaded. `global` makes its symbols visible to later loads (NVRTC
  /// finds its builtins library by soname that way).
  public static func open(
    _ name: String, probeSymbol: String, global: Bool = false
  ) throws(CUDAError) -> DynamicLibrary {
    _ = dlerror()
    guard let handle = dlopen(name, RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL)) else {
      let reason = dlerror().map { String(cString: $0) } ?? "dlopen failed"
      throw .libraryNotLoaded(library: name, reason: reason)
    }
    guard let probe = dlsym(handle, probeSymbol) else {
      throw .missingSymbol(library: name, symbol: probeSymbol)
    }
    let path = loadedFile(of: probe) ?? name
    // A soname can resolve to a copy we must not use (see `LibrarySearch.isForbidden`).
    if LibrarySearch.isForbidden(path) {
      throw .libraryNotLoaded(
        library: name, reason: "resolved to \(path), a stubs/ or compat/ copy that is never used")
    }
    return DynamicLibrary(requestedName: name, path: path, handle: handle)
  }

  /// Opens a helper library (no probe) so that its soname is already loaded when another
  /// library asks for it; failures are ignored by the caller.
  static func preload(_ path: String) -> Bool {
    dlopen(path, RTLD_NOW | RTLD_GLOBAL) != nil
  }

  /// The function `name` cast to the C function type `T`, or nil when it is not exported.
  public func function<T>(_ name: String, as type: T.Type = T.self) -> T? {
    guard let raw = dlsym(handle, name) else { return nil }
    return unsafeBitCast(raw, to: T.self)
  }

  /// Like `function` but throws `missingSymbol`.
  public func require<T>(_ name: String, as type: T.Type = T.self) throws(CUDAError) -> T {
    guard let f: T = function(name) else {
      throw .missingSymbol(library: path, symbol: name)
    }
    return f
  }

  /// `Dl_info` of `<dlfcn.h>`: four pointers.
  private struct DlInfo {
    var fileName: UnsafePointer<CChar>? = nil
    var fileBase: UnsafeMutableRawPointer? = nil
    var symbolName: UnsafePointer<CChar>? = nil
    var symbolAddress: UnsafeMutableRawPointer? = nil
  }
  private typealias DladdrFunction = @convention(c) (UnsafeRawPointer, UnsafeMutableRawPointer) -> Int32

  /// `dladdr` is a GNU extension the Swift C module does not import; it is looked up at run
  /// time (in libc since glibc 2.34, in libdl before).
  private static let dladdrFunction: DladdrFunction? = {
    if let f = dlsym(nil, "dladdr") { return unsafeBitCast(f, to: DladdrFunction.self) }
    if let libdl = dlopen("libdl.so.2", RTLD_NOW), let f = dlsym(libdl, "dladdr") {
      return unsafeBitCast(f, to: DladdrFunction.self)
    }
    return nil
  }()

  private static func loadedFile(of symbol: UnsafeMutableRawPointer) -> String? {
    var info = DlInfo()
    guard let dladdr = dladdrFunction, withUnsafeMutableBytes(of: &info, { dladdr(symbol, $0.baseAddress!) }) != 0,
      let file = info.fileName
    else { return nil }
    return String(cString: file)
  }
}
