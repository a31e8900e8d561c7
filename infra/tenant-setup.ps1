<#
.SYNOPSIS
  Teams-side setup for the Teams EHR connector: the application access policy for the organizer accounts, and
  anonymous join so patients can enter the lobby from a browser without an account.

.DESCRIPTION
  Bicep and az CLI cannot change Teams policies; this needs the MicrosoftTeams PowerShell module and a Teams
  Administrator (or Global Administrator). Run it after infra/tenant-setup.sh, with the client ID that script printed.
  Safe to re-run: existing policies are updated, grants are repeated harmlessly.

  What it changes:
  1. Application access policy TeamsEhrConnector allowing the app (client ID) to create and update online meetings
     on behalf of the listed organizer accounts only (Graph onlineMeetings with application permissions needs it).
  2. Meeting policy TeamsEhrVirtualVisits with AllowAnonymousUsersToJoinMeeting, granted to the same organizer
     accounts; these should be dedicated virtual-appointment accounts, because granting replaces their meeting policy.
  3. Tenant meeting configuration: DisableAnonymousJoin $false (the tenant-wide switch that must allow anonymous join).
  Policy changes can take up to 30 minutes (sometimes longer) to take effect.

.PARAMETER AppId
  Application (client) ID of the connector's app registration.

.PARAMETER OrganizerUpns
  User principal names of the Teams accounts that organize the virtual appointments (one per FHIR endpoint).

.EXAMPLE
  ./infra/tenant-setup.ps1 -AppId 11111111-2222-3333-4444-555555555555 -OrganizerUpns visits@contoso.org
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string] $AppId,
    [Parameter(Mandatory)][string[]] $OrganizerUpns,
    [string] $AccessPolicyName = 'TeamsEhrConnector',
    [string] $MeetingPolicyName = 'TeamsEhrVirtualVisits'
)
$ErrorActionPreference = 'Stop'

if (-not (Get-Module -ListAvailable -Name MicrosoftTeams)) {
    throw 'Install the MicrosoftTeams module first: Install-Module MicrosoftTeams -Scope CurrentUser'
}
Import-Module MicrosoftTeams
Connect-MicrosoftTeams | Out-Null

# 1. Application access policy: the app may act only for these organizers.
if (Get-CsApplicationAccessPolicy -Identity $AccessPolicyName -ErrorAction SilentlyContinue) {
    Set-CsApplicationAccessPolicy -Identity $AccessPolicyName -AppIds @{ Add = $AppId }
} else {
    New-CsApplicationAccessPolicy -Identity $AccessPolicyName -AppIds $AppId `
        -Description 'Teams EHR connector: online meetings for virtual appointments'
}

# 2. Anonymous join for meetings these organizers own (patients wait in the lobby; lobby is set per meeting).
if (Get-CsTeamsMeetingPolicy -Identity $MeetingPolicyName -ErrorAction SilentlyContinue) {
    Set-CsTeamsMeetingPolicy -Identity $MeetingPolicyName -AllowAnonymousUsersToJoinMeeting $true
} else {
    New-CsTeamsMeetingPolicy -Identity $MeetingPolicyName -AllowAnonymousUsersToJoinMeeting $true `
        -Description 'Teams EHR connector: patients join virtual appointments from a browser'
}

foreach ($upn in $OrganizerUpns) {
    Grant-CsApplicationAccessPolicy -PolicyName $AccessPolicyName -Identity $upn
    Grant-CsTeamsMeetingPolicy -PolicyName $MeetingPolicyName -Identity $upn
}

# 3. The tenant-wide switch; when it is on, no per-user policy can allow anonymous join.
Set-CsTeamsMeetingConfiguration -Identity Global -DisableAnonymousJoin $false

Write-Output "Done. Allow up to 30 minutes before creating the first meeting for: $($OrganizerUpns -join ', ')"
