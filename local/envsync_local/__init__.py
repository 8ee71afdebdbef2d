"""Local mode: the three AWS accounts and Aurora clusters stood in for on one machine.

moto (in server mode, with the CloudFormation models it lacks) plays AWS; three MariaDB
servers play the three Aurora clusters; real Sceptre launches the real templates against them.
"""
