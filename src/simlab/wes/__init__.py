"""SimLab as a GA4GH Workflow Execution Service (WES 1.1) at `/ga4gh/wes/v1`, and a small
client for any WES server. A WES run is a simulation: `workflow_url` names the algorithm,
`workflow_params` are its parameters, and every change goes through the simulation
services (permissions, quotas, audit)."""
