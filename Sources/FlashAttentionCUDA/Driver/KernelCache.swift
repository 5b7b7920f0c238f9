import Foundation
import Synchronization

/// A kernel compiled to CUBIN, with the ptxas report of each of its functions.
public struct CompiledKernel: Sendable {
  public enum Origin: String, Sendable { case compiled, memory, disk }
  public var name: String
  public var arch: GPUArch
  /// Hex SHA-256 of source, options, arch and NVRTC version.
  public var key: String
  public var cubin: [UInt8]
  /// NVRTC's log of the compilation (ptxas report included).
  public var log: String
  public var origin: Origin
  public var reports: [PtxasReport] { PtxasReport.parse(log: log) }
}

/// Compiled kernels, in memory and on disk (`$XDG_CACHE_HOME/flash-attn/`, else
/// `~/.cache/flash-attn/`), keyed by the SHA-256 of the source, the options, the arch and
/// the NVRTC version — so a changed generator, a new compiler or another GPU never reuses
/// a stale binary.
///
/// Each file is `<key>.cubin`: a header (magic, payload length, SHA-256 of the payload)
/// then the payload (NVRTC's log and the CUBIN). It is written to a temporary file and
/// renamed, so readers never see half a file; an entry whose header or digest does not
/// check out is recompiled and rewritten, never loaded.
public final class KernelCache: @unchecked Sendable {
  /// The folder of the disk cache; nil keeps entries in memory only.
  public let directory: String?
  private let memory = Mutex<[String: CompiledKernel]>([:])
  private let counters = Mutex(Statistics())
  private let compilerProvider: @Sendable () throws(CUDAError) -> NVRTC

  /// How requests were served since this cache was made.
  public struct Statistics: Sendable, Equatable {
    public var memoryHits = 0
    public var diskHits = 0
    public var compilations = 0
    /// Disk entries that failed their checks and were recompiled.
    public var rejectedEntries = 0
  }

  static let magic: [UInt8] = Array("FLASHCUBIN-v1\0\0\0".utf8)

  /// The process-wide cache in the default folder.
  public static let shared = KernelCache(directory: defaultDirectory())

  public init(
    directory: String?, compiler: @escaping @Sendable () throws(CUDAError) -> NVRTC = { () throws(CUDAError) in try NVRTC.shared() }
  ) {
    self.directory = directory
    compilerProvider = compiler
  }

  /// `$FLASH_ATTN_CACHE_DIR`, else `$XDG_CACHE_HOME/flash-attn`, else `~/.cache/flash-attn`.
  public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
    if let explicit = environment["FLASH_ATTN_CACHE_DIR"], !explicit.isEmpty { return explicit }
    if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/flash-attn" }
    let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
    return home + "/.cache/flash-attn"
  }

  public var statistics: Statistics { counters.withLock { $0 } }

  /// Files and bytes of the disk cache.
  public func diskUsage() -> (files: Int, bytes: Int) {
    guard let directory, let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return (0, 0) }
    var files = 0
    var bytes = 0
    for name in names where name.hasSuffix(".cubin") {
      let attributes = try? FileManager.default.attributesOfItem(atPath: directory + "/" + name)
      files += 1
      bytes += (attributes?[.size] as? Int) ?? 0
    }
    return (files, bytes)
  }

  /// The cache key of a compilation.
  public static func key(source: String, options: [String], arch: GPUArch, compilerVersion: String) -> String {
    var h = SHA256()
    for part in [source, options.joined(separator: "\u{1}"), arch.rawValue, compilerVersion, "format-1"] {
      h.update(part)
      h.update([0])
    }
    return SHA256.hex(h.finalize())
  }

  /// The CUBIN of `kernel` for its arch: from memory, else from disk, else compiled (and
  /// stored in both).
  public func compile(_ kernel: GeneratedKernel, extraOptions: [String] = []) throws(CUDAError) -> CompiledKernel {
    try compile(source: kernel.source, name: kernel.name, arch: kernel.arch, extraOptions: extraOptions)
  }

  public func compile(
    source: String, name: String, arch: GPUArch, extraOptions: [String] = []
  ) throws(CUDAError) -> CompiledKernel {
    let nvrtc = try compilerProvider()
    let options = NVRTC.options(for: arch, extra: extraOptions)
    let key = Self.key(source: source, options: options, arch: arch, compilerVersion: nvrtc.identity)
    if var hit = memory.withLock({ $0[key] }) {
      counters.withLock { $0.memoryHits += 1 }
      hit.origin = .memory
      return hit
    }
    if let directory {
      switch readEntry(directory: directory, key: key) {
      case let .found(log, cubin):
        let entry = CompiledKernel(name: name, arch: arch, key: key, cubin: cubin, log: log, origin: .disk)
        memory.withLock { $0[key] = entry }
        counters.withLock { $0.diskHits += 1 }
        return entry
      case .rejected:
        counters.withLock { $0.rejectedEntries += 1 }
      case .absent:
        break
      }
    }
    let output: NVRTC.Output
    do {
      output = try nvrtc.compile(source: source, name: name, options: options)
    } catch {
      if case let .compilation(kernel, log, _) = error {
        throw .compilation(kernel: kernel, log: log, sourcePath: saveFailedSource(source, name: name, key: key))
      }
      throw error
    }
    counters.withLock { $0.compilations += 1 }
    let entry = CompiledKernel(name: name, arch: arch, key: key, cubin: output.cubin, log: output.log, origin: .compiled)
    memory.withLock { $0[key] = entry }
    if let directory { writeEntry(directory: directory, key: key, log: output.log, cubin: output.cubin) }
    return entry
  }

  /// Drops the in-memory entries (the disk stays), e.g. to test the disk path.
  public func clearMemory() { memory.withLock { $0.removeAll() } }

  // MARK: disk format

  enum ReadResult { case absent, rejected, found(log: String, cubin: [UInt8]) }

  func path(directory: String, key: String) -> String { directory + "/" + key + ".cubin" }

  func readEntry(directory: String, key: String) -> ReadResult {
    let file = path(directory: directory, key: key)
    guard FileManager.default.fileExists(atPath: file) else { return .absent }
    guard let data = FileManager.default.contents(atPath: file) else { return .rejected }
    let bytes = [UInt8](data)
    let headerSize = Self.magic.count + 8 + 32
    guard bytes.count >= headerSize, Array(bytes[0..<Self.magic.count]) == Self.magic else { return .rejected }
    let payloadLength = Self.readUInt64(bytes, at: Self.magic.count)
    guard payloadLength == UInt64(bytes.count - headerSize) else { return .rejected }
    let digest = Array(bytes[(Self.magic.count + 8)..<headerSize])
    let payload = bytes[headerSize...]
    guard SHA256.hash(payload) == digest, payload.count >= 8 else { return .rejected }
    let logLength = Int(Self.readUInt64(bytes, at: headerSize))
    guard logLength <= payload.count - 8 else { return .rejected }
    let logStart = headerSize + 8
    let log = String(decoding: bytes[logStart..<logStart + logLength], as: UTF8.self)
    let cubin = Array(bytes[(logStart + logLength)...])
    guard !cubin.isEmpty else { return .rejected }
    return .found(log: log, cubin: cubin)
  }

  /// Best effort: a cache that cannot be written (read-only home) only costs recompiles.
  func writeEntry(directory: String, key: String, log: String, cubin: [UInt8]) {
    var payload: [UInt8] = []
    let logBytes = Array(log.utf8)
    Self.appendUInt64(&payload, UInt64(logBytes.count))
    payload += logBytes
    payload += cubin
    var file = Self.magic
    Self.appendUInt64(&file, UInt64(payload.count))
    file += SHA256.hash(payload)
    file += payload
    do {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
      let target = path(directory: directory, key: key)
      let temporary = target + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
      guard FileManager.default.createFile(atPath: temporary, contents: Data(file)) else { return }
      if rename(temporary, target) != 0 { try? FileManager.default.removeItem(atPath: temporary) }
    } catch {
      return
    }
  }

  /// Saves generated source that failed to compile, for the user to read; returns its path.
  func saveFailedSource(_ source: String, name: String, key: String) -> String? {
    let folders = [directory.map { $0 + "/failed" }, NSTemporaryDirectory() + "flash-attn-failed"].compactMap { $0 }
    for folder in folders {
      let file = folder + "/" + name + "-" + key.prefix(12) + ".cu"
      if (try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)) != nil,
        FileManager.default.createFile(atPath: file, contents: Data(source.utf8))
      {
        return file
      }
    }
    return nil
  }

  static func appendUInt64(_ bytes: inout [UInt8], _ v: UInt64) {
    for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
  }

  static func readUInt64(_ bytes: [UInt8], at offset: Int) -> UInt64 {
    (0..<8).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
  }
}
