import Testing
@testable import Engine

/// OpenCL discovery on the machine's ICD loader (PoCL in CI: scripts/bootstrap.sh installs it).
struct OpenCLDevicesTests {
    @Test func poclListsTheCPUAsADevice() throws {
        let devices = try OpenCLDevices.list().get()
        let pocl = try #require(devices.first { $0.platform == "Portable Computing Language" }, "\(devices)")
        #expect(pocl.kind == "CPU" && pocl.computeUnits >= 1 && pocl.memoryBytes > 0 && !pocl.name.isEmpty)
        #expect(pocl.version.hasPrefix("OpenCL "))
        #expect(devices.map(\.index) == Array(0..<devices.count))
    }
}
