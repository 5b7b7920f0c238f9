import Foundation

/// Where the CUDA libraries are looked for, in order. Every place is a folder or file on
/// disk; nothing is downloaded or compiled.
///
/// NVRTC and cuBLAS come with the CUDA toolkit (`$CUDA_HOME/lib64`, `/usr/local/cuda/lib64`)
/// and with the `nvidia-*` wheels of PyPI (`site-packages/nvidia/cu13/lib` for CUDA 13,
/// `site-packages/nvidia/cuda_nvrtc/lib` and `nvidia/cublas/lib` for CUDA 12), which is how
/// PyTorch users usually have them. The driver `libcuda.so.1` comes with the kernel driver
/// and is only ever opened by its soname.
public enum LibrarySearch {
  /// `stubs/` copies (link-time stand-ins whose every call fails) and `compat/` copies
  /// (forward-compatibility drivers that must match the kernel module) are never loaded.
  public static func isForbidden(_ path: String) -> Bool {
    let components = path.split(separator: "/")
    return components.contains("stubs") || components.contains("compat")
  }

  /// A library family: file-name stem and the major versions we know, newest first.
  public struct Family: Sendable {
    /// `libnvrtc`, `libcublas`.
    public var stem: String
    /// Majors tried by plain soname at the end, newest first.
    public var majors: [Int]
    /// Subfolders of `site-packages/nvidia/` to try before the rest.
    public var wheelFolders: [String]
    /// Environment variable holding an explicit path (file or folder).
    public var environmentVariable: String

    public static let nvrtc = Family(
      stem: "libnvrtc", majors: [13, 12], wheelFolders: ["cu13", "cuda_nvrtc"],
      environmentVariable: "FLASH_ATTN_NVRTC")
    public static let cublas = Family(
      stem: "libcublas", majors: [13, 12], wheelFolders: ["cu13", "cublas"],
      environmentVariable: "FLASH_ATTN_CUBLAS")
  }

  /// Candidate files and then bare sonames for `family`, in search order:
  /// the environment variable, `CUDA_HOME`/`CUDA_PATH` lib64, `/usr/local/cuda/lib64`,
  /// `nvidia/*/lib` of the Python site-packages, then the plain sonames.
  /// `askPython` runs `python3` for its site folders when the usual places hold none.
  public static func candidates(
    for family: Family, environment: [String: String] = ProcessInfo.processInfo.environment,
    askPython: Bool = true
  ) -> [String] {
    var result: [String] = []
    func add(_ files: [String]) {
      for f in files where !isForbidden(f) && !result.contains(f) { result.append(f) }
    }
    if let explicit = environment[family.environmentVariable], !explicit.isEmpty {
      add(isDirectory(explicit) ? libraries(of: family, in: explicit) : [explicit])
    }
    for variable in ["CUDA_HOME", "CUDA_PATH"] {
      if let root = environment[variable], !root.isEmpty {
        add(libraries(of: family, in: root + "/lib64"))
        add(libraries(of: family, in: root + "/lib"))
      }
    }
    add(libraries(of: family, in: "/usr/local/cuda/lib64"))
    var sites = usualSitePackages(environment: environment)
    var wheelHits = sites.flatMap { wheelLibraries(of: family, site: $0) }
    if wheelHits.isEmpty && askPython {
      sites = pythonSitePackages().filter { !sites.contains($0) }
      wheelHits = sites.flatMap { wheelLibraries(of: family, site: $0) }
    }
    add(wheelHits)
    add(family.majors.map { "\(family.stem).so.\($0)" } + ["\(family.stem).so"])
    return result
  }

  /// `stem.so.N…` files of `folder`, newest version first (`libnvrtc.so.13` before
  /// `libnvrtc.so.12`), skipping the `.alt.` variants and helper libraries.
  public static func libraries(of family: Family, in folder: String) -> [String] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
    let prefix = family.stem + ".so"
    let matching = names.filter { $0 == prefix || $0.hasPrefix(prefix + ".") }
    return matching.sorted { versionKey($1, prefix).lexicographicallyPrecedes(versionKey($0, prefix)) }
      .map { folder + "/" + $0 }
  }

  /// The numeric suffix of `libx.so.13.0.88` as `[13, 0, 88]`; the bare `.so` sorts last.
  static func versionKey(_ name: String, _ prefix: String) -> [Int] {
    let suffix = name.dropFirst(prefix.count)
    let parts = suffix.split(separator: ".").map { Int($0) ?? -1 }
    return parts.isEmpty ? [-2] : parts
  }

  static func wheelLibraries(of family: Family, site: String) -> [String] {
    let root = site + "/nvidia"
    guard let subfolders = try? FileManager.default.contentsOfDirectory(atPath: root) else { return [] }
    let ordered = family.wheelFolders.filter(subfolders.contains)
      + subfolders.sorted().filter { !family.wheelFolders.contains($0) }
    return ordered.flatMap { libraries(of: family, in: root + "/" + $0 + "/lib") }
  }

  /// Site folders found without running Python: virtual environments, conda, `PYTHONPATH`,
  /// the user's and the system's `pythonX.Y` folders, pyenv versions.
  public static func usualSitePackages(environment: [String: String]) -> [String] {
    var prefixes: [String] = []
    for variable in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
      if let p = environment[variable], !p.isEmpty { prefixes.append(p) }
    }
    let home = environment["HOME"] ?? NSHomeDirectory()
    prefixes += [home + "/.local", "/usr/local", "/usr", "/opt/conda"]
    var sites = (environment["PYTHONPATH"] ?? "").split(separator: ":").map(String.init)
    if let versions = try? FileManager.default.contentsOfDirectory(atPath: home + "/.pyenv/versions") {
      prefixes += versions.sorted().map { home + "/.pyenv/versions/" + $0 }
    }
    for prefix in prefixes {
      let lib = prefix + "/lib"
      guard let entries = try? FileManager.default.contentsOfDirectory(atPath: lib) else { continue }
      for python in entries.sorted(by: >) where python.hasPrefix("python3") {
        for kind in ["site-packages", "dist-packages"] {
          let site = lib + "/" + python + "/" + kind
          if isDirectory(site) { sites.append(site) }
        }
      }
      if isDirectory(lib + "/python3/dist-packages") { sites.append(lib + "/python3/dist-packages") }
    }
    return sites.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
  }

  /// Asks `python3` (if on the PATH) for its site folders; empty when that fails.
  public static func pythonSitePackages() -> [String] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [
      "python3", "-c",
      "import site,sys;print('\\n'.join(site.getsitepackages()+[site.getusersitepackages()]+sys.path))",
    ]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return [] }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { return [] }
    return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
      .filter { isDirectory($0) }
  }

  static func isDirectory(_ path: String) -> Bool {
    var isDir: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
  }

  /// Opens the first candidate that loads and exports `probeSymbol`; throws
  /// `libraryNotLoaded` listing every attempt when none does. An explicit environment
  /// path that fails is an error of its own (the user asked for that file).
  public static func open(
    _ family: Family, probeSymbol: String,
    environment: [String: String] = ProcessInfo.processInfo.environment,
    beforeOpening: (String) -> Void = { _ in }
  ) throws(CUDAError) -> DynamicLibrary {
    var attempts: [String] = []
    let explicit = environment[family.environmentVariable].flatMap { $0.isEmpty ? nil : $0 }
    for candidate in candidates(for: family, environment: environment) {
      beforeOpening(candidate)
      do {
        return try DynamicLibrary.open(candidate, probeSymbol: probeSymbol)
      } catch {
        attempts.append(error.description)
        if let explicit, candidate.hasPrefix(explicit) {
          throw .libraryNotLoaded(
            library: candidate, reason: "\(family.environmentVariable) names it but it does not load: \(error)")
        }
      }
    }
    throw .libraryNotLoaded(
      library: family.stem, reason: "not found; tried: " + attempts.joined(separator: "; "))
  }
}
