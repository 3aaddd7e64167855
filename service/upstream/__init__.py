"""AWS, the upstream: the boto3 client, the one classification of how an AWS call ended, the limits
of each attempt (deadlines, total time, reply size) and whether a failed call may have been applied.
"""
