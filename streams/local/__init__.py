"""The embedded stack (broker, emulator, S3 server, worker), the demo and its workload."""
