import Foundation
import FlashAttention
import FlashAttentionBench
import FlashAttentionCPU
import Testing

/// The smoke preset end to end on the real CPU backend: what CI's `bench --preset smoke`
/// relies on. Checks completeness and agreement, never speed.
@Suite struct CPUSmokeTests {
  @Test func smokePresetOnTheCPUFillsEveryField() throws {
    let backend = CPUBackend()
    let plan = BenchPlan(experiments: Preset.smoke.experiments(dtype: .float32), implementations: [.flash, .standard])
    let runner = BenchRunner(backend: backend, settings: MeasureSettings(warmup: 1, repeats: 2))
    let records = try runner.run(plan, cost: nil)
    #expect(records.count == 2 * (try plan.items().count))
    for r in records {
      #expect(r.status == .ok, "\(r.implementation) \(r.benchCase?.description ?? "") \(r.note ?? "")")
      #expect(r.medianMs.map { $0 > 0 } == true)
      #expect(r.minMs! <= r.medianMs! && r.medianMs! <= r.maxMs!)
      #expect(r.tflops.map { $0 > 0 } == true)
      #expect(r.peakMemoryBytes.map { $0 > 0 } == true)
      // flash and standard agree on the same inputs (float32, values of order 1).
      let err = try #require(r.maxError)
      #expect(err < 1e-4)
    }
    for pass in ["forward", "backward"] {
      #expect(Set(records.filter { $0.pass == pass }.map(\.implementation)) == ["flash", "standard"])
    }
    // Standard materialises seqlen²; flash does not: more memory at the longest seqlen.
    // HostMemory is process-wide and other suites allocate in parallel with this one, which
    // can only add to a measured peak: the smallest of up to three runs is this pass's own.
    func peaks(_ rs: [BenchRecord]) throws -> (flash: Int, standard: Int) {
      let longest = rs.filter { $0.seqlenQ == 256 && $0.pass == "forward" && !$0.causal }
      let flash = try #require(longest.first { $0.implementation == "flash" }?.peakMemoryBytes)
      let standard = try #require(longest.first { $0.implementation == "standard" }?.peakMemoryBytes)
      return (flash, standard)
    }
    var (flashPeak, standardPeak) = try peaks(records)
    for _ in 0..<2 where standardPeak <= flashPeak {
      let again = try peaks(try runner.run(plan, cost: nil))
      flashPeak = min(flashPeak, again.flash)
      standardPeak = min(standardPeak, again.standard)
    }
    #expect(standardPeak > flashPeak)

    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bench-smoke-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let results = BenchResults(
      metadata: BenchMetadata(command: "test", date: "", machine: MachineInfo.summary, device: backend.deviceName, notes: []),
      records: records)
    let files = try BenchReport.write(results: results, experiments: plan.experiments, to: dir)
    #expect(files.filter { $0.hasSuffix(".svg") }.count >= 5)
    for svg in files where svg.hasSuffix(".svg") {
      #expect(XMLCheck.parse(try String(contentsOfFile: dir + "/" + svg, encoding: .utf8)).ok, "\(svg)")
    }
  }
}
