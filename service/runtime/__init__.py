"""The process: the asyncio gRPC server and its serving model, health, worker processes and the
embedded emulator of the local backend (the only place the facade imports the emulator).
"""
